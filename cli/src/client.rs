//! `samsyn as <person> ...`: a client that goes through the gateway like any other, as one
//! of the demo programme's people, with a token from the development issuer.

use std::io::Write;

use anyhow::Context;
use prost::Message;
use samsyn_gateway::auth::{DevIssuer, Principal, PrincipalKind};
use samsyn_kit::tls;
use samsyn_proto::audit::v1 as audit_pb;
use samsyn_proto::audit::v1::audit_service_client::AuditServiceClient;
use samsyn_proto::board::v1 as board_pb;
use samsyn_proto::board::v1::board_service_client::BoardServiceClient;
use samsyn_proto::common::v1::{PageRequest, ParticipantId, Revision};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1 as participants_pb;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::plans::v1 as plans_pb;
use samsyn_proto::plans::v1::plans_service_client::PlansServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::SamsynConfig;
use crate::demo::{DemoPerson, Roster};

/// The region of the demo programme (the gateway's default region organisation).
const REGION: &str = "SE2321000255";

/// The file `samsyn up --demo` writes the demo roster to, in the data directory.
pub const ROSTER_FILE: &str = "demo.json";

/// What to look at or do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// The FACT team's board, as this person may see it.
    Board,
    /// The participants this person may see.
    Participants,
    /// One participant's active SIP plan.
    Plan {
        /// A participant's key from the roster, or their id.
        participant: String,
    },
    /// One participant's consents.
    Consents {
        /// A participant's key from the roster, or their id.
        participant: String,
    },
    /// Revoke a consent (the participant themself, or staff recording their wish).
    RevokeConsent {
        /// A participant's key from the roster, or their id.
        participant: String,
        /// The consent's id (see `consents`).
        consent_id: String,
        /// Why, in the participant's words.
        #[arg(long, default_value = "Återkallat på deltagarens begäran")]
        reason: String,
    },
    /// Record a participant's consent to share the region's information with a municipality.
    RecordConsent {
        /// A participant's key from the roster, or their id.
        participant: String,
        /// The municipality (organisation) that may read.
        #[arg(long)]
        to: String,
        /// A data category it covers (repeatable): board, plan, care_team, enrolment, ...
        #[arg(long = "category", required = true)]
        categories: Vec<String>,
    },
    /// Push a municipal decision on an intervention in the participant's active plan.
    PushDecision {
        /// A participant's key from the roster, or their id.
        participant: String,
        /// The deciding system's own decision id.
        #[arg(long)]
        decision_id: String,
        /// The intervention's catalogue code (e.g. municipality.housing_support).
        #[arg(long)]
        catalogue_code: String,
        /// granted, denied or partly_granted.
        #[arg(long, default_value = "granted")]
        outcome: String,
    },
    /// The audit log: a participant's own access log, or an auditor's view of one participant.
    AuditLog {
        /// For an auditor: the participant (key or id).
        participant: Option<String>,
    },
    /// Refuse sessions before their tokens expire (a security auditor): one token by its id,
    /// or every token of a subject issued until now.
    RevokeSessions {
        /// One token's id (`jti`).
        #[arg(long)]
        token_id: Option<String>,
        /// Every token of this subject (a staff HSA id, or a participant's key or id).
        #[arg(long)]
        subject: Option<String>,
        /// Only tokens of this issuer (`iss`); every trusted issuer when left out.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// An aggregate report for the person's organisation (small cells withheld), as CSV,
    /// or as JSON with `--json`.
    Report {
        /// recruitment, coverage, board, board-levels, fidelity, sip-kollen or consultation.
        kind: String,
        /// The calendar year (default: this year).
        #[arg(long)]
        year: Option<i32>,
    },
    /// The demo people one can act as.
    People,
}

/// A gRPC client that adds the bearer token.
type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
struct Bearer(
    tonic::metadata::AsciiMetadataValue,
    /// The consistency token of the last write made with `samsyn as`, if any.
    Option<tonic::metadata::AsciiMetadataValue>,
);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        if let Some(token) = &self.1 {
            request
                .metadata_mut()
                .insert(samsyn_gateway::proxy::CONSISTENCY_HEADER, token.clone());
        }
        Ok(request)
    }
}

/// Where `samsyn as` keeps the consistency token of its last write: every later `as` call
/// sends it, so whichever gateway replica answers has applied that write.
const CONSISTENCY_FILE: &str = "consistency-token";

/// Keeps the consistency token a write's answer carried, for the next `samsyn as` call.
fn remember_consistency(config: &SamsynConfig, metadata: &tonic::metadata::MetadataMap) {
    if let Some(token) = metadata
        .get(samsyn_gateway::proxy::CONSISTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let _ = std::fs::write(config.data_dir.join(CONSISTENCY_FILE), token);
    }
}

/// Runs one client command as `who`; a refusal reads as the gateway's status, not a trace.
pub async fn run(
    config: &SamsynConfig,
    who: &str,
    action: Action,
    json: bool,
) -> anyhow::Result<()> {
    match act(config, who, action, json).await {
        Err(error) => match error.downcast_ref::<tonic::Status>() {
            Some(status) => anyhow::bail!("{:?}: {}", status.code(), status.message()),
            None => Err(error),
        },
        ok => ok,
    }
}

async fn act(config: &SamsynConfig, who: &str, action: Action, json: bool) -> anyhow::Result<()> {
    let roster_path = config.data_dir.join(ROSTER_FILE);
    let roster: Roster =
        serde_json::from_str(&std::fs::read_to_string(&roster_path).with_context(|| {
            format!(
                "no demo roster at {}: start `samsyn up --demo` first",
                roster_path.display()
            )
        })?)
        .context("the demo roster does not parse")?;
    let mut out = std::io::stdout().lock();
    if let Action::People = action {
        for person in &roster.people {
            writeln!(out, "{:<14} {}", person.key, person.name)?;
        }
        return Ok(());
    }
    let person = roster
        .people
        .iter()
        .find(|p| p.key == who)
        .with_context(|| format!("no demo person {who:?}; see `samsyn as anyone people`"))?;
    let certs = config.data_dir.join("certs");
    let token =
        DevIssuer::at(&certs).issue(&principal(person), std::time::Duration::from_secs(600))?;
    let consistency = std::fs::read_to_string(config.data_dir.join(CONSISTENCY_FILE))
        .ok()
        .and_then(|token| token.trim().parse().ok());
    let bearer = Bearer(format!("Bearer {token}").parse()?, consistency);
    let client = tls::client_config(tls::DevPki::at(&certs).trust_anchors()?, None)?;
    let channel = tls::channel(
        crate::launch::reachable(config.gateway.listen),
        "localhost",
        client,
    )?;
    let participant = |key: &str| -> Option<ParticipantId> {
        let id = roster
            .people
            .iter()
            .find(|p| p.key == key && p.kind == "participant")
            .map_or(key, |p| p.id.as_str());
        Some(ParticipantId {
            value: id.to_owned(),
        })
    };
    let names = |people: &[participants_pb::ParticipantSummary]| {
        people
            .iter()
            .filter_map(|p| Some((p.participant_id.as_ref()?.value.clone(), p.name.clone())))
            .collect::<std::collections::HashMap<_, _>>()
    };
    match action {
        Action::People => {}
        Action::Board => {
            let board = BoardServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .get_board(board_pb::GetBoardRequest {
                    team_id: roster.team_id.clone(),
                })
                .await?
                .into_inner();
            if json {
                return print_json(&mut out, &board, "samsyn.board.v1.GetBoardResponse");
            }
            let visible = names(&list_participants(&channel, &bearer).await?);
            writeln!(
                out,
                "{:<26} {:>5} {:<10} {:>4}  reason",
                "participant", "level", "trend", "days"
            )?;
            for entry in &board.entries {
                let id = entry
                    .participant_id
                    .as_ref()
                    .map(|p| p.value.clone())
                    .unwrap_or_default();
                let status = entry.status.clone().unwrap_or_default();
                writeln!(
                    out,
                    "{:<26} {:>5} {:<10} {:>4}  {}",
                    visible.get(&id).cloned().unwrap_or(id),
                    status.level,
                    trend(status.trend()),
                    entry.days_on_board,
                    entry.reason
                )?;
            }
            writeln!(out, "{} on the board", board.entries.len())?;
        }
        Action::Participants => {
            let people = list_participants(&channel, &bearer).await?;
            if json {
                let response = participants_pb::ListParticipantsResponse {
                    participants: people,
                    page: None,
                };
                return print_json(
                    &mut out,
                    &response,
                    "samsyn.participants.v1.ListParticipantsResponse",
                );
            }
            writeln!(out, "{:<38} {:<26} {:<6} status", "id", "name", "kommun")?;
            for p in &people {
                writeln!(
                    out,
                    "{:<38} {:<26} {:<6} {}",
                    p.participant_id
                        .as_ref()
                        .map(|i| i.value.as_str())
                        .unwrap_or(""),
                    p.name,
                    p.home_municipality_code,
                    p.status()
                        .as_str_name()
                        .trim_start_matches("PARTICIPANT_STATUS_")
                        .to_lowercase()
                )?;
            }
        }
        Action::Plan { participant: key } => {
            let plan = PlansServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .get_active_plan(plans_pb::GetActivePlanRequest {
                    participant_id: participant(&key),
                })
                .await?
                .into_inner();
            if json {
                return print_json(&mut out, &plan, "samsyn.plans.v1.Plan");
            }
            let content = plan.content.unwrap_or_default();
            writeln!(
                out,
                "plan {} (revision {})",
                plan.id,
                plan.revision.map_or(0, |r| r.value)
            )?;
            for goal in &content.goals {
                writeln!(out, "goal         {}", goal.text)?;
            }
            for need in &content.needs {
                writeln!(out, "need         {}", need.description)?;
            }
            for intervention in &content.interventions {
                let what = match &intervention.kind {
                    Some(plans_pb::intervention::Kind::CatalogueCode(code)) => code.clone(),
                    Some(plans_pb::intervention::Kind::FreeText(text)) => text.clone(),
                    None => String::new(),
                };
                let by = intervention
                    .responsible_organisation_id
                    .as_ref()
                    .map(|o| o.value.as_str())
                    .unwrap_or("");
                writeln!(out, "intervention {what} ({by})")?;
            }
            let today = chrono::Utc::now().date_naive();
            for follow_up in &content.follow_ups {
                let due = follow_up
                    .due_on
                    .as_ref()
                    .and_then(|d| chrono::NaiveDate::from_ymd_opt(d.year, d.month, d.day));
                let overdue = follow_up.completed_on.is_none() && due.is_some_and(|d| d < today);
                writeln!(
                    out,
                    "follow-up    {} {}{}",
                    due.map(|d| d.to_string()).unwrap_or_default(),
                    follow_up.description,
                    if overdue { "  OVERDUE" } else { "" }
                )?;
            }
        }
        Action::Consents { participant: key } => {
            let consents = ConsentServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .list_consents(consent_pb::ListConsentsRequest {
                    participant_id: participant(&key),
                    page: Some(PageRequest {
                        page_size: 100,
                        page_token: String::new(),
                    }),
                })
                .await?
                .into_inner();
            if json {
                return print_json(
                    &mut out,
                    &consents,
                    "samsyn.consent.v1.ListConsentsResponse",
                );
            }
            writeln!(out, "{:<38} {:<20} {:<10} sharing", "id", "kind", "state")?;
            for consent in &consents.consents {
                let sharing = consent.sharing.as_ref().map_or(String::new(), |s| {
                    let org = |o: &Option<samsyn_proto::common::v1::OrganisationId>| {
                        o.as_ref().map(|o| o.value.clone()).unwrap_or_default()
                    };
                    format!(
                        "{} → {} ({} categories)",
                        org(&s.from_organisation_id),
                        org(&s.to_organisation_id),
                        s.categories.len()
                    )
                });
                writeln!(
                    out,
                    "{:<38} {:<20} {:<10} {}",
                    consent.id,
                    consent
                        .kind()
                        .as_str_name()
                        .trim_start_matches("CONSENT_KIND_")
                        .to_lowercase(),
                    consent
                        .state()
                        .as_str_name()
                        .trim_start_matches("CONSENT_STATE_")
                        .to_lowercase(),
                    sharing
                )?;
            }
        }
        Action::RevokeConsent {
            participant: key,
            consent_id,
            reason,
        } => {
            let mut consent =
                ConsentServiceClient::with_interceptor(channel.clone(), bearer.clone());
            let current = consent
                .list_consents(consent_pb::ListConsentsRequest {
                    participant_id: participant(&key),
                    page: Some(PageRequest {
                        page_size: 100,
                        page_token: String::new(),
                    }),
                })
                .await?
                .into_inner()
                .consents
                .into_iter()
                .find(|c| c.id == consent_id)
                .context("no such consent of this participant")?;
            let revoked_by = match person.kind.as_str() {
                "participant" => consent_pb::Actor {
                    kind: consent_pb::ActorKind::Participant as i32,
                    staff: None,
                },
                _ => staff_actor(person),
            };
            let revoked = consent
                .revoke_consent(consent_pb::RevokeConsentRequest {
                    participant_id: participant(&key),
                    consent_id,
                    revision: current.revision.or(Some(Revision { value: 0 })),
                    revoked_by: Some(revoked_by),
                    reason,
                })
                .await?;
            remember_consistency(config, revoked.metadata());
            let revoked = revoked.into_inner();
            if json {
                return print_json(&mut out, &revoked, "samsyn.consent.v1.Consent");
            }
            writeln!(out, "revoked consent {}", revoked.id)?;
        }
        Action::RecordConsent {
            participant: key,
            to,
            categories,
        } => {
            let mut codes = Vec::new();
            for category in &categories {
                let name = format!("DATA_CATEGORY_{}", category.to_uppercase());
                let code = samsyn_proto::common::v1::DataCategory::from_str_name(&name)
                    .with_context(|| format!("no data category {category}"))?;
                codes.push(code as i32);
            }
            let org = |value: &str| {
                Some(samsyn_proto::common::v1::OrganisationId {
                    value: value.to_owned(),
                })
            };
            let recorded = ConsentServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .record_consent(consent_pb::RecordConsentRequest {
                    participant_id: participant(&key),
                    kind: consent_pb::ConsentKind::InformationSharing as i32,
                    sharing: Some(consent_pb::Sharing {
                        from_organisation_id: org(REGION),
                        to_organisation_id: org(&to),
                        categories: codes,
                        unit_id: String::new(),
                        staff_id: String::new(),
                    }),
                    valid_from: None,
                    valid_until: None,
                    form: consent_pb::ConsentForm::Verbal as i32,
                    requested_by: Some(consent_pb::Actor {
                        kind: consent_pb::ActorKind::Participant as i32,
                        staff: None,
                    }),
                    recorded_by: Some(staff_actor(person)),
                    on_behalf_of: None,
                    note: String::new(),
                    idempotency_key: String::new(),
                    study_id: String::new(),
                })
                .await?;
            remember_consistency(config, recorded.metadata());
            let recorded = recorded.into_inner();
            if json {
                return print_json(&mut out, &recorded, "samsyn.consent.v1.Consent");
            }
            writeln!(out, "recorded consent {}", recorded.id)?;
        }
        Action::PushDecision {
            participant: key,
            decision_id,
            catalogue_code,
            outcome,
        } => {
            let name = format!("DECISION_OUTCOME_{}", outcome.to_uppercase());
            let outcome = plans_pb::DecisionOutcome::from_str_name(&name)
                .with_context(|| format!("no decision outcome {outcome}"))?;
            let today = chrono::Utc::now().date_naive();
            let pushed = PlansServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .push_decision(plans_pb::PushDecisionRequest {
                    decision: Some(plans_pb::Decision {
                        external_decision_id: decision_id,
                        organisation_id: person
                            .organisation
                            .clone()
                            .map(|value| samsyn_proto::common::v1::OrganisationId { value }),
                        participant_id: participant(&key),
                        subject: Some(plans_pb::decision::Subject::CatalogueCode(catalogue_code)),
                        outcome: outcome as i32,
                        valid_from: Some(samsyn_proto::common::v1::CalendarDate {
                            year: chrono::Datelike::year(&today),
                            month: chrono::Datelike::month(&today),
                            day: chrono::Datelike::day(&today),
                        }),
                        valid_until: None,
                        decided_by: staff_actor(person).staff,
                        decided_at: Some(samsyn_kit::time::to_timestamp(chrono::Utc::now())),
                        personal_identity_number: String::new(),
                        version: 0,
                        change: 0,
                    }),
                })
                .await?
                .into_inner();
            if json {
                return print_json(&mut out, &pushed, "samsyn.plans.v1.PushDecisionResponse");
            }
            writeln!(
                out,
                "decision recorded in plan {} revision {} (intervention {}){}",
                pushed.plan_id,
                pushed.plan_revision.map_or(0, |r| r.value),
                pushed.intervention_id,
                if pushed.replayed {
                    ", a replay: nothing changed"
                } else {
                    ""
                }
            )?;
        }
        Action::RevokeSessions {
            token_id,
            subject,
            issuer,
        } => {
            let subject = subject.map(|key| {
                roster
                    .people
                    .iter()
                    .find(|p| p.key == key)
                    .map_or(key, |p| p.id.clone())
            });
            let revoked = AuditServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .revoke_sessions(audit_pb::RevokeSessionsRequest {
                    issuer: issuer.unwrap_or_default(),
                    token_id: token_id.unwrap_or_default(),
                    subject: subject.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if json {
                return print_json(&mut out, &revoked, "samsyn.audit.v1.RevokeSessionsResponse");
            }
            writeln!(
                out,
                "revoked; kept until {}",
                revoked.until.map_or(0, |t| t.seconds)
            )?;
        }
        Action::Report { kind, year } => {
            use samsyn_proto::reports::v1 as reports_pb;
            let kind = match kind.as_str() {
                "recruitment" => reports_pb::ReportKind::Recruitment,
                "coverage" => reports_pb::ReportKind::InterventionCoverage,
                "board" => reports_pb::ReportKind::Board,
                "fidelity" => reports_pb::ReportKind::Fidelity,
                "consultation" => reports_pb::ReportKind::Consultation,
                "sip-kollen" => reports_pb::ReportKind::SipKollen,
                "board-levels" => reports_pb::ReportKind::BoardLevels,
                other => {
                    anyhow::bail!(
                        "no report {other:?}: recruitment, coverage, board, board-levels, fidelity, sip-kollen or consultation"
                    )
                }
            };
            let format = if json {
                reports_pb::ReportFormat::Json
            } else {
                reports_pb::ReportFormat::Csv
            };
            let report =
                reports_pb::reports_service_client::ReportsServiceClient::with_interceptor(
                    channel.clone(),
                    bearer.clone(),
                )
                .get_report(reports_pb::GetReportRequest {
                    kind: kind as i32,
                    year: year.unwrap_or_else(|| chrono::Datelike::year(&chrono::Utc::now())),
                    format: format as i32,
                })
                .await?
                .into_inner();
            out.write_all(&report.document)?;
            if json {
                writeln!(out)?;
            }
        }
        Action::AuditLog { participant: key } => {
            let mut audit = AuditServiceClient::with_interceptor(channel.clone(), bearer.clone());
            if person.kind == "participant" {
                let log = audit
                    .get_my_access_log(audit_pb::GetMyAccessLogRequest {
                        participant_id: participant(&person.key),
                        page: Some(PageRequest {
                            page_size: 500,
                            page_token: String::new(),
                        }),
                    })
                    .await?
                    .into_inner();
                if json {
                    return print_json(&mut out, &log, "samsyn.audit.v1.GetMyAccessLogResponse");
                }
                writeln!(
                    out,
                    "{:<28} {:<14} {:<12} {:<12} what",
                    "when", "organisation", "unit", "data"
                )?;
                for entry in &log.entries {
                    writeln!(
                        out,
                        "{:<28} {:<14} {:<12} {:<12} {}",
                        entry
                            .time
                            .as_ref()
                            .and_then(samsyn_kit::time::from_timestamp)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                        entry
                            .organisation_id
                            .as_ref()
                            .map(|o| o.value.as_str())
                            .unwrap_or(""),
                        entry.unit_id,
                        entry
                            .category()
                            .as_str_name()
                            .trim_start_matches("DATA_CATEGORY_")
                            .to_lowercase(),
                        entry.rpc.rsplit('/').next().unwrap_or("")
                    )?;
                }
            } else {
                let events = audit
                    .list_events(audit_pb::ListEventsRequest {
                        participant_id: key.as_deref().and_then(participant),
                        page: Some(PageRequest {
                            page_size: 500,
                            page_token: String::new(),
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                if json {
                    return print_json(&mut out, &events, "samsyn.audit.v1.ListEventsResponse");
                }
                writeln!(
                    out,
                    "{:>6} {:<20} {:<22} {:<11} rpc",
                    "pos", "when", "who", "decision"
                )?;
                for event in &events.events {
                    writeln!(
                        out,
                        "{:>6} {:<20} {:<22} {:<11} {}",
                        event.position,
                        event
                            .time
                            .as_ref()
                            .and_then(samsyn_kit::time::from_timestamp)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                        event
                            .principal
                            .as_ref()
                            .map(|p| p.id.as_str())
                            .unwrap_or("-"),
                        event
                            .decision()
                            .as_str_name()
                            .trim_start_matches("DECISION_")
                            .to_lowercase(),
                        event.rpc.rsplit('/').next().unwrap_or("")
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Every participant the caller may see, all pages.
async fn list_participants(
    channel: &Channel,
    bearer: &Bearer,
) -> anyhow::Result<Vec<participants_pb::ParticipantSummary>> {
    let mut client: ParticipantsServiceClient<Authed> =
        ParticipantsServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_participants(participants_pb::ListParticipantsRequest {
                page: Some(PageRequest {
                    page_size: 200,
                    page_token: token,
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        all.extend(page.participants);
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return Ok(all);
        }
    }
}

fn principal(person: &DemoPerson) -> Principal {
    Principal {
        id: person.id.clone(),
        kind: if person.kind == "participant" {
            PrincipalKind::Participant
        } else {
            PrincipalKind::Staff
        },
        organisation: person.organisation.clone(),
        unit: person.unit.clone(),
        roles: person.roles.clone(),
        teams: person.teams.clone(),
        purpose: (person.kind != "participant").then(|| "care".to_owned()),
        acting_through: None,
    }
}

/// The person as a member of staff acting in a consent record.
fn staff_actor(person: &DemoPerson) -> consent_pb::Actor {
    consent_pb::Actor {
        kind: consent_pb::ActorKind::Staff as i32,
        staff: Some(samsyn_proto::common::v1::StaffRef {
            staff_id: person.id.clone(),
            organisation_id: person
                .organisation
                .clone()
                .map(|value| samsyn_proto::common::v1::OrganisationId { value }),
            unit_id: person.unit.clone().unwrap_or_default(),
        }),
    }
}

fn trend(trend: board_pb::Trend) -> String {
    trend
        .as_str_name()
        .trim_start_matches("TREND_")
        .to_lowercase()
}

/// Prints a response as proto3 JSON.
fn print_json(out: &mut impl Write, message: &impl Message, name: &str) -> anyhow::Result<()> {
    let pool = prost_reflect::DescriptorPool::decode(samsyn_proto::FILE_DESCRIPTOR_SET)?;
    let descriptor = pool
        .get_message_by_name(name)
        .with_context(|| format!("no message {name}"))?;
    let dynamic =
        prost_reflect::DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    writeln!(out, "{}", serde_json::to_string_pretty(&dynamic)?)?;
    Ok(())
}
