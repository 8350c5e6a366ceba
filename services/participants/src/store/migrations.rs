//! The participants service's own tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, boolean_null, date_null, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

/// Creates `participant`, `referral`, `review` and `assignment`.
pub struct CreateParticipants;

impl MigrationName for CreateParticipants {
    fn name(&self) -> &str {
        "m20261123_100001_create_participants"
    }
}

#[derive(DeriveIden)]
enum Participant {
    Table,
    Id,
    PersonalIdentityNumber,
    Name,
    HomeMunicipalityCode,
    Status,
    CurrentReferralId,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Referral {
    Table,
    Id,
    ParticipantId,
    ReferringPrincipal,
    ReferredByStaffId,
    ReferredByOrganisationId,
    ReferredByUnitId,
    Reason,
    LongTermNeedsFromBothPrincipals,
    DiagnosisCriteriaMet,
    ReferredAt,
    OutcomeAccepted,
    OutcomeReason,
    DecidedAt,
    ConsentReference,
    EnrolledOn,
    EnrolledMunicipalityCode,
    DischargeReason,
    DischargedOn,
    DischargeNote,
}

#[derive(DeriveIden)]
enum Review {
    Table,
    Id,
    ReferralId,
    ParticipantId,
    Principal,
    StaffId,
    OrganisationId,
    UnitId,
    Assessment,
    Reason,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Assignment {
    Table,
    Id,
    ParticipantId,
    Kind,
    Principal,
    Rank,
    Role,
    StaffId,
    OrganisationId,
    UnitId,
    ValidFrom,
    ValidUntil,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateParticipants {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Participant::Table)
                    .col(string(Participant::Id).primary_key())
                    .col(string(Participant::PersonalIdentityNumber).unique_key())
                    .col(string(Participant::Name))
                    .col(string(Participant::HomeMunicipalityCode))
                    .col(string(Participant::Status))
                    .col(string(Participant::CurrentReferralId))
                    .col(
                        ColumnDef::new(Participant::Revision)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp_with_time_zone(Participant::CreatedAt))
                    .col(timestamp_with_time_zone(Participant::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_participant_status", Participant::Status),
            (
                "ix_participant_municipality",
                Participant::HomeMunicipalityCode,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Participant::Table)
                        .col(column)
                        .col(Participant::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Referral::Table)
                    .col(string(Referral::Id).primary_key())
                    .col(string(Referral::ParticipantId))
                    .col(string(Referral::ReferringPrincipal))
                    .col(string(Referral::ReferredByStaffId))
                    .col(string(Referral::ReferredByOrganisationId))
                    .col(string_null(Referral::ReferredByUnitId))
                    .col(text(Referral::Reason))
                    .col(boolean(Referral::LongTermNeedsFromBothPrincipals))
                    .col(boolean(Referral::DiagnosisCriteriaMet))
                    .col(timestamp_with_time_zone(Referral::ReferredAt))
                    .col(boolean_null(Referral::OutcomeAccepted))
                    .col(text_null(Referral::OutcomeReason))
                    .col(timestamp_with_time_zone_null(Referral::DecidedAt))
                    .col(string_null(Referral::ConsentReference))
                    .col(date_null(Referral::EnrolledOn))
                    .col(string_null(Referral::EnrolledMunicipalityCode))
                    .col(string_null(Referral::DischargeReason))
                    .col(date_null(Referral::DischargedOn))
                    .col(text_null(Referral::DischargeNote))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Referral::Table, Referral::ParticipantId)
                            .to(Participant::Table, Participant::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_referral_participant", Referral::ParticipantId),
            (
                "ix_referral_organisation",
                Referral::ReferredByOrganisationId,
            ),
            ("ix_referral_enrolled_on", Referral::EnrolledOn),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Referral::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Review::Table)
                    .col(string(Review::Id).primary_key())
                    .col(string(Review::ReferralId))
                    .col(string(Review::ParticipantId))
                    .col(string(Review::Principal))
                    .col(string(Review::StaffId))
                    .col(string(Review::OrganisationId))
                    .col(string_null(Review::UnitId))
                    .col(string(Review::Assessment))
                    .col(text(Review::Reason))
                    .col(timestamp_with_time_zone(Review::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Review::Table, Review::ReferralId)
                            .to(Referral::Table, Referral::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One review per principal and referral, even if two callers race.
        manager
            .create_index(
                Index::create()
                    .name("ux_review_referral_principal")
                    .table(Review::Table)
                    .col(Review::ReferralId)
                    .col(Review::Principal)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Assignment::Table)
                    .col(string(Assignment::Id).primary_key())
                    .col(string(Assignment::ParticipantId))
                    .col(string(Assignment::Kind))
                    .col(string_null(Assignment::Principal))
                    .col(string_null(Assignment::Rank))
                    .col(string_null(Assignment::Role))
                    .col(string(Assignment::StaffId))
                    .col(string(Assignment::OrganisationId))
                    .col(string_null(Assignment::UnitId))
                    .col(timestamp_with_time_zone(Assignment::ValidFrom))
                    .col(timestamp_with_time_zone_null(Assignment::ValidUntil))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Assignment::Table, Assignment::ParticipantId)
                            .to(Participant::Table, Participant::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_assignment_participant", Assignment::ParticipantId),
            ("ix_assignment_staff", Assignment::StaffId),
            ("ix_assignment_organisation", Assignment::OrganisationId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Assignment::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Assignment::Table.into_iden(),
            Review::Table.into_iden(),
            Referral::Table.into_iden(),
            Participant::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Adds what enrolment needs from the consent service: the participation consents followed
/// from its change feed, the cursor of that feed, and the flag on a referral whose
/// participation consent was revoked.
pub struct FollowParticipationConsents;

impl MigrationName for FollowParticipationConsents {
    fn name(&self) -> &str {
        "m20261204_100002_follow_participation_consents"
    }
}

#[derive(DeriveIden)]
enum ReferralFlag {
    #[sea_orm(iden = "referral")]
    Table,
    ConsentRevokedAt,
}

#[derive(DeriveIden)]
enum ParticipationConsent {
    Table,
    ConsentId,
    ParticipantId,
    Active,
}

#[derive(DeriveIden)]
enum FeedCursor {
    Table,
    Feed,
    Sequence,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for FollowParticipationConsents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReferralFlag::Table)
                    .add_column(timestamp_with_time_zone_null(
                        ReferralFlag::ConsentRevokedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParticipationConsent::Table)
                    .if_not_exists()
                    .col(string(ParticipationConsent::ConsentId).primary_key())
                    .col(string(ParticipationConsent::ParticipantId))
                    .col(boolean(ParticipationConsent::Active))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedCursor::Table)
                    .if_not_exists()
                    .col(string(FeedCursor::Feed).primary_key())
                    .col(big_integer(FeedCursor::Sequence))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FeedCursor::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ParticipationConsent::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ReferralFlag::Table)
                    .drop_column(ReferralFlag::ConsentRevokedAt)
                    .to_owned(),
            )
            .await
    }
}
