//! Finding a participant by personal identity number: the list filter matches the one
//! person in any accepted form, and a malformed number is refused, not ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use samsyn_kit::testing::fresh_sqlite_url;
use samsyn_proto::participants::v1::ListParticipantsRequest;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

fn by_pin(pin: &str) -> ListParticipantsRequest {
    ListParticipantsRequest {
        personal_identity_number: pin.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_list_finds_one_person_by_personal_identity_number() {
    let dir = tempfile::tempdir().unwrap();
    let (_served, mut client) = serve(&fresh_sqlite_url(dir.path()), dir.path()).await;
    let anna = pin("19800101", "123");
    let bo = pin("19750505", "456");
    let created = client
        .create_referral(referral(&anna, "Anna Testsson", "key-anna"))
        .await
        .unwrap()
        .into_inner();
    client
        .create_referral(referral(&bo, "Bo Testsson", "key-bo"))
        .await
        .unwrap();

    for form in [
        anna.clone(),
        format!("{}-{}", &anna[..8], &anna[8..]),
        anna[2..].to_owned(),
    ] {
        let found = client
            .list_participants(by_pin(&form))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.participants.len(), 1, "{form}");
        assert_eq!(found.participants[0].participant_id, created.participant_id);
    }

    let nobody = client
        .list_participants(by_pin(&pin("19900909", "789")))
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.participants.is_empty());

    // A wrong check digit or a non-number is refused rather than listing everyone.
    let mut wrong = anna.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    for bad in [wrong.as_str(), "not-a-number", "19800101"] {
        let status = client.list_participants(by_pin(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "personal_identity_number");
    }
}
