//! Helpers shared by the participants service's gRPC tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use samsyn_kit::config::Limits;
use samsyn_kit::serve::PartContext;
use samsyn_kit::testing::ServedPart;
use samsyn_participants::domain::pin::check_digit;
use samsyn_proto::common::v1::{
    CalendarDate, OrganisationId, OrganisationKind, ParticipantId, Revision, StaffRef,
};
use samsyn_proto::participants::v1::participants_service_client::ParticipantsServiceClient;
use samsyn_proto::participants::v1::{AdmissionCriteria, CreateReferralRequest};
use tonic::transport::Channel;

/// The gRPC client.
pub type Client = ParticipantsServiceClient<Channel>;

/// A served participants part on `url`, with default settings.
pub async fn serve(url: &str, dir: &std::path::Path) -> (ServedPart, Client) {
    let context = PartContext {
        database_url: url.to_owned(),
        data_dir: dir.to_path_buf(),
        limits: Limits::default(),
    };
    let part = samsyn_participants::part(&context).await.unwrap();
    let served = ServedPart::start(part).await;
    let client = ParticipantsServiceClient::new(served.channel.clone());
    (served, client)
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
