//! Domain values in their `samsyn.board.v1` form: answers, feed payloads and remembered
//! idempotent responses all use these.

use chrono::{NaiveDate, Utc};
use samsyn_kit::time::{to_calendar_date, to_timestamp};
use samsyn_proto::board::v1 as pb;
use samsyn_proto::common::v1::{OrganisationId, ParticipantId, Revision, StaffRef};

use crate::domain::notice::{DecisionNotice, NoticeKind};
use crate::domain::{self, agenda::AgendaReason};

/// Today in UTC: the day days-on-board and default agendas count from.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A staff reference.
pub fn staff(staff: &domain::Staff) -> StaffRef {
    StaffRef {
        staff_id: staff.staff_id.to_string(),
        organisation_id: Some(staff.organisation_id.to_proto()),
        unit_id: staff.unit_id.clone(),
    }
}

fn participant(id: domain::ParticipantId) -> Option<ParticipantId> {
    Some(id.to_proto())
}

fn trend(trend: domain::Trend) -> pb::Trend {
    match trend {
        domain::Trend::Worsening => pb::Trend::Worsening,
        domain::Trend::Unchanged => pb::Trend::Unchanged,
        domain::Trend::Improving => pb::Trend::Improving,
    }
}

/// A status assessment.
pub fn status(status: &domain::Status) -> pb::StatusAssessment {
    pb::StatusAssessment {
        level: status.level,
        trend: trend(status.trend).into(),
        note: status.note.as_str().to_owned(),
    }
}

/// A team.
pub fn team(team: &domain::Team) -> pb::Team {
    let spec = &team.spec;
    pb::Team {
        team_id: team.id.to_string(),
        name: spec.name.as_str().to_owned(),
        owner_organisation_id: Some(OrganisationId {
            value: spec.owner.as_str().to_owned(),
        }),
        coordinators: spec
            .coordinators
            .iter()
            .map(|c| pb::Coordinator {
                staff: Some(staff(&c.staff)),
                role: match c.role {
                    domain::CoordinatorRole::Main => pb::CoordinatorRole::Main,
                    domain::CoordinatorRole::Deputy => pb::CoordinatorRole::Deputy,
                }
                .into(),
            })
            .collect(),
        criteria: spec
            .config
            .criteria()
            .iter()
            .map(|c| pb::Criterion {
                code: c.code.as_str().to_owned(),
                label: c.label.as_str().to_owned(),
            })
            .collect(),
        status_levels: spec
            .config
            .levels()
            .iter()
            .map(|l| pb::StatusLevel {
                level: l.level,
                colour: l.colour.as_str().to_owned(),
                meaning: l.meaning.as_str().to_owned(),
            })
            .collect(),
        revision: Some(Revision {
            value: team.revision,
        }),
    }
}

/// An agreed action.
pub fn action(action: &domain::Action) -> pb::AgreedAction {
    pb::AgreedAction {
        action_id: action.id.to_string(),
        description: action.description.as_str().to_owned(),
        owner: Some(staff(&action.owner)),
        due_on: Some(to_calendar_date(action.due_on)),
        done_at: action.done.as_ref().map(|(at, _)| to_timestamp(*at)),
        done_by: action.done.as_ref().map(|(_, by)| staff(by)),
        created_at: Some(to_timestamp(action.created_at)),
        created_by: Some(staff(&action.created_by)),
        meeting_id: action.meeting_id.map(|m| m.to_string()).unwrap_or_default(),
    }
}

/// A board entry, with days on the board counted to `today`.
pub fn entry(entry: &domain::Entry, today: NaiveDate) -> pb::BoardEntry {
    let state = if entry.is_on_board() {
        pb::EntryState::OnBoard
    } else {
        pb::EntryState::TakenOff
    };
    pb::BoardEntry {
        entry_id: entry.id.to_string(),
        team_id: entry.team_id.to_string(),
        participant_id: participant(entry.participant_id),
        state: state.into(),
        reason: entry.reason.as_str().to_owned(),
        criteria: entry
            .criteria
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        status: Some(status(&entry.status)),
        next_review_on: entry.next_review_on.map(to_calendar_date),
        actions: entry.actions.iter().map(action).collect(),
        put_on_at: Some(to_timestamp(entry.put_on_at)),
        put_on_by: Some(staff(&entry.put_on_by)),
        taken_off_at: entry.taken_off.as_ref().map(|t| to_timestamp(t.at)),
        taken_off_by: entry.taken_off.as_ref().map(|t| staff(&t.by)),
        take_off_reason: entry
            .taken_off
            .as_ref()
            .map(|t| t.reason.as_str().to_owned())
            .unwrap_or_default(),
        days_on_board: entry.days_on_board(today),
        revision: Some(Revision {
            value: entry.revision,
        }),
        updated_at: Some(to_timestamp(entry.updated_at)),
        participation_consent_revoked_at: entry
            .facts
            .participation_consent_revoked_at
            .map(to_timestamp),
        latest_decision_at: entry.facts.latest_decision_at.map(to_timestamp),
    }
}

fn notice_kind(kind: NoticeKind) -> pb::DecisionNoticeKind {
    match kind {
        NoticeKind::Recorded => pb::DecisionNoticeKind::Recorded,
        NoticeKind::Changed => pb::DecisionNoticeKind::Changed,
        NoticeKind::Parked => pb::DecisionNoticeKind::Parked,
        NoticeKind::Linked => pb::DecisionNoticeKind::Linked,
        NoticeKind::Dismissed => pb::DecisionNoticeKind::Dismissed,
    }
}

/// A municipal decision to bring up.
pub fn notice(notice: &DecisionNotice) -> pb::DecisionNotice {
    pb::DecisionNotice {
        kind: notice_kind(notice.kind).into(),
        external_decision_id: notice.external_decision_id.clone(),
        organisation_id: Some(OrganisationId {
            value: notice.organisation_id.clone(),
        }),
        outcome: notice.outcome,
        version: notice.version,
        change: notice.change,
        intervention_id: notice.intervention_id.clone(),
        catalogue_code: notice.catalogue_code.clone(),
        inbox_id: notice.inbox_id.clone(),
        park_reason: notice.park_reason,
        noted_at: Some(to_timestamp(notice.noted_at)),
    }
}

fn event_kind(kind: domain::EventKind) -> pb::BoardEventKind {
    match kind {
        domain::EventKind::PutOn => pb::BoardEventKind::PutOn,
        domain::EventKind::Updated => pb::BoardEventKind::Updated,
        domain::EventKind::ActionAdded => pb::BoardEventKind::ActionAdded,
        domain::EventKind::ActionCompleted => pb::BoardEventKind::ActionCompleted,
        domain::EventKind::Discussed => pb::BoardEventKind::Discussed,
        domain::EventKind::TakenOff => pb::BoardEventKind::TakenOff,
    }
}

fn point(p: &domain::StatusPoint) -> pb::StatusPoint {
    pb::StatusPoint {
        entry_id: p.entry_id.to_string(),
        team_id: p.team_id.to_string(),
        status: Some(status(&p.status)),
        recorded_at: Some(to_timestamp(p.recorded_at)),
        recorded_by: Some(staff(&p.recorded_by)),
    }
}

/// A participant's timeline.
pub fn timeline(
    participant_id: domain::ParticipantId,
    timeline: &domain::Timeline,
) -> pb::GetTimelineResponse {
    pb::GetTimelineResponse {
        participant_id: participant(participant_id),
        points: timeline.points.iter().map(point).collect(),
        before_period: timeline.before.as_ref().map(point),
        events: timeline
            .events
            .iter()
            .map(|e| pb::BoardEvent {
                entry_id: e.entry_id.map(|id| id.to_string()).unwrap_or_default(),
                team_id: e.team_id.to_string(),
                kind: event_kind(e.kind).into(),
                occurred_at: Some(to_timestamp(e.occurred_at)),
                recorded_by: Some(staff(&e.recorded_by)),
                detail: e.detail.clone(),
                action_id: e.action_id.map(|id| id.to_string()).unwrap_or_default(),
                meeting_id: e.meeting_id.map(|id| id.to_string()).unwrap_or_default(),
            })
            .collect(),
    }
}

/// An agenda.
pub fn agenda(
    team_id: domain::TeamId,
    on: NaiveDate,
    items: &[domain::agenda::AgendaItem],
    decisions: &[(domain::ParticipantId, Vec<DecisionNotice>)],
) -> pb::Agenda {
    pb::Agenda {
        team_id: team_id.to_string(),
        on: Some(to_calendar_date(on)),
        items: items
            .iter()
            .map(|item| pb::AgendaItem {
                participant_id: participant(item.entry.participant_id),
                reasons: item
                    .reasons
                    .iter()
                    .map(|r| {
                        i32::from(match r {
                            AgendaReason::NewEntry => pb::AgendaReason::NewEntry,
                            AgendaReason::DueForReview => pb::AgendaReason::DueForReview,
                            AgendaReason::OverdueActions => pb::AgendaReason::OverdueActions,
                            AgendaReason::ParticipationConsentRevoked => {
                                pb::AgendaReason::ParticipationConsentRevoked
                            }
                        })
                    })
                    .collect(),
                entry: Some(entry(&item.entry, on)),
                overdue_actions: item.overdue.iter().map(action).collect(),
                participation_consent_revoked_at: item
                    .entry
                    .facts
                    .participation_consent_revoked_at
                    .map(to_timestamp),
            })
            .collect(),
        decisions: decisions
            .iter()
            .map(|(id, notices)| pb::AgendaDecisions {
                participant_id: participant(*id),
                notices: notices.iter().map(notice).collect(),
            })
            .collect(),
    }
}

/// A meeting without its minutes.
pub fn meeting(meeting: &domain::Meeting) -> pb::MeetingSummary {
    pb::MeetingSummary {
        meeting_id: meeting.id.to_string(),
        team_id: meeting.spec.team_id.to_string(),
        held_on: Some(to_calendar_date(meeting.spec.held_on)),
        chair: Some(staff(&meeting.spec.chair)),
        attendees: meeting.spec.attendees.iter().map(staff).collect(),
        started_at: Some(to_timestamp(meeting.started_at)),
    }
}

/// One participant's part of the minutes.
pub fn discussion(discussion: &domain::Discussion) -> pb::Discussion {
    pb::Discussion {
        discussion_id: discussion.id.to_string(),
        meeting_id: discussion.meeting_id.to_string(),
        participant_id: participant(discussion.participant_id),
        entry_id: discussion
            .entry_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        notes: discussion.notes.as_str().to_owned(),
        decisions: discussion
            .decisions
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect(),
        actions: discussion.actions.iter().map(action).collect(),
        recorded_at: Some(to_timestamp(discussion.recorded_at)),
        recorded_by: Some(staff(&discussion.recorded_by)),
    }
}
