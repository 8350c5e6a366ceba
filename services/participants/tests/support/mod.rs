//! Helpers shared by the participants service's gRPC tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::ServedPart;
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::common::v1::{
    CalendarDate, OrganisationId, OrganisationKind, ParticipantId, Revision, StaffRef,
};
use samsyn_proto::consent::v1 as consent_pb;
use samsyn_proto::consent::v1::consent_service_client::ConsentServiceClient;
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::participants::v1::{AdmissionCriteria, CreateReferralRequest};
use tonic::transport::Channel;

/// The gRPC client.
pub type Client = ParticipantsServiceClient<Channel>;

/// The participants part and the consent part whose feed it follows.
pub struct Served {
    pub participants: ServedPart,
    pub consent: ServedPart,
}

impl Served {
    /// Records a participation consent of `participant` in the consent service.
    pub async fn participation_consent(&self, participant: &str) -> consent_pb::Consent {
        self.consent_of(participant, consent_pb::ConsentKind::Participation)
            .await
    }

    /// Records a consent of `kind` (participation or research) of `participant`.
    pub async fn consent_of(
        &self,
        participant: &str,
        kind: consent_pb::ConsentKind,
    ) -> consent_pb::Consent {
        ConsentServiceClient::new(self.consent.channel.clone())
            .record_consent(consent_pb::RecordConsentRequest {
                participant_id: pid(participant),
                kind: kind as i32,
                sharing: None,
                valid_from: None,
                valid_until: None,
                form: consent_pb::ConsentForm::Written as i32,
                requested_by: Some(consent_pb::Actor {
                    kind: consent_pb::ActorKind::Participant as i32,
                    staff: None,
                }),
                recorded_by: Some(consent_pb::Actor {
                    kind: consent_pb::ActorKind::Staff as i32,
                    staff: staff("SE2321000255-D01", REGION),
                }),
                on_behalf_of: None,
                note: "Medgivande att delta, givet skriftligt".to_owned(),
                idempotency_key: String::new(),
                study_id: if kind == consent_pb::ConsentKind::ResearchStudy {
                    "fact-rct".to_owned()
                } else {
                    String::new()
                },
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Revokes `consent` as its participant.
    pub async fn revoke(&self, consent: &consent_pb::Consent) {
        ConsentServiceClient::new(self.consent.channel.clone())
            .revoke_consent(consent_pb::RevokeConsentRequest {
                participant_id: consent.participant_id.clone(),
                consent_id: consent.id.clone(),
                revision: consent.revision,
                revoked_by: Some(consent_pb::Actor {
                    kind: consent_pb::ActorKind::Participant as i32,
                    staff: None,
                }),
                reason: "Vill inte längre delta".to_owned(),
            })
            .await
            .unwrap();
    }
}

/// A served participants part on `url`, with default settings, following a consent part of
/// its own.
pub async fn serve(url: &str, dir: &std::path::Path) -> (Served, Client) {
    serve_with(
        url,
        dir,
        samsyn_participants::ParticipantsSettings::default(),
    )
    .await
}

/// As [`serve`], with these settings.
pub async fn serve_with(
    url: &str,
    dir: &std::path::Path,
    settings: samsyn_participants::ParticipantsSettings,
) -> (Served, Client) {
    let context = PartContext {
        database_url: url.to_owned(),
        data_dir: dir.to_path_buf(),
        limits: Limits::default(),
    };
    let consent_context = PartContext {
        database_url: samsyn_kit::testing::fresh_sqlite_url(dir),
        ..context.clone()
    };
    let consent = ServedPart::start(samsyn_consent::part(&consent_context).await.unwrap()).await;
    let part =
        samsyn_participants::part_with_settings(&context, settings, Some(consent.channel.clone()))
            .await
            .unwrap();
    let participants = ServedPart::start(part).await;
    let client = ParticipantsServiceClient::new(participants.channel.clone());
    (
        Served {
            participants,
            consent,
        },
        client,
    )
}

/// A synthetic, valid personnummer (12 digits) for a birth date `yyyymmdd` and serial `nnn`.
pub fn pin(yyyymmdd: &str, nnn: &str) -> String {
    let nine = format!("{}{nnn}", &yyyymmdd[2..]);
    let digits: Vec<u32> = nine.bytes().map(|b| u32::from(b - b'0')).collect();
    format!("{yyyymmdd}{nnn}{}", check_digit(&digits))
}

/// A member of staff of `org`.
pub fn staff(id: &str, org: &str) -> Option<StaffRef> {
    Some(StaffRef {
        staff_id: id.to_owned(),
        organisation_id: Some(OrganisationId {
            value: org.to_owned(),
        }),
        unit_id: String::new(),
    })
}

/// The region's id (Region Skåne, HSA style) and a municipality's (Helsingborg).
pub const REGION: &str = "SE2321000255";
pub const HELSINGBORG: &str = "1283";

/// A complete referral from the region.
pub fn referral(pin: &str, name: &str, key: &str) -> CreateReferralRequest {
    CreateReferralRequest {
        idempotency_key: key.to_owned(),
        personal_identity_number: pin.to_owned(),
        name: name.to_owned(),
        home_municipality_code: HELSINGBORG.to_owned(),
        referring_principal: OrganisationKind::Region as i32,
        referred_by: staff("SE2321000255-P001", REGION),
        reason: "Behov av samordnat stöd från båda huvudmännen över lång tid".to_owned(),
        criteria: Some(AdmissionCriteria {
            long_term_needs_from_both_principals: true,
            diagnosis_criteria_met: true,
        }),
    }
}

/// A participant id message.
pub fn pid(value: &str) -> Option<ParticipantId> {
    Some(ParticipantId {
        value: value.to_owned(),
    })
}

/// A revision message.
pub fn rev(value: u64) -> Option<Revision> {
    Some(Revision { value })
}

/// Today as a calendar date.
pub fn today() -> Option<CalendarDate> {
    Some(samsyn_kit::time::to_calendar_date(
        chrono::Utc::now().date_naive(),
    ))
}
