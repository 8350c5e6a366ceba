//! The plans schema.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, string, string_null, text, timestamp_with_time_zone,
};

/// Creates plans, revisions, the follow-up index, decisions and the catalogue.
pub struct CreatePlans;

impl MigrationName for CreatePlans {
    fn name(&self) -> &str {
        "m20261123_000100_create_plans"
    }
}

#[derive(DeriveIden)]
enum Plan {
    Table,
    Id,
    ParticipantId,
    ActiveParticipantId,
    Status,
    Revision,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlanRevision {
    Table,
    PlanId,
    Revision,
    Kind,
    Body,
    RecordedAt,
}

#[derive(DeriveIden)]
enum FollowUpIndex {
    Table,
    PlanId,
    FollowUpId,
    ParticipantId,
    OrganisationId,
    TeamId,
    DueOn,
    Body,
}

#[derive(DeriveIden)]
enum Decision {
    Table,
    OrganisationId,
    ExternalId,
    ParticipantId,
    Body,
    PlanId,
    InterventionId,
    PlanRevision,
    RecordedAt,
}

#[derive(DeriveIden)]
pub(super) enum CatalogueEntry {
    Table,
    Code,
    Principal,
    Name,
    Active,
    Position,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreatePlans {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plan::Table)
                    .if_not_exists()
                    .col(string(Plan::Id).primary_key())
                    .col(string(Plan::ParticipantId))
                    // Set while the plan is active, so a unique index allows one active plan
                    // per participant (NULLs never collide).
                    .col(string_null(Plan::ActiveParticipantId).unique_key())
                    .col(string(Plan::Status))
                    .col(big_integer(Plan::Revision))
                    .col(text(Plan::Body))
                    .col(timestamp_with_time_zone(Plan::CreatedAt))
                    .col(timestamp_with_time_zone(Plan::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("plan_participant")
                    .table(Plan::Table)
                    .col(Plan::ParticipantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PlanRevision::Table)
                    .if_not_exists()
                    .col(string(PlanRevision::PlanId))
                    .col(big_integer(PlanRevision::Revision))
                    .col(string(PlanRevision::Kind))
                    .col(text(PlanRevision::Body))
                    .col(timestamp_with_time_zone(PlanRevision::RecordedAt))
                    .primary_key(
                        Index::create()
                            .col(PlanRevision::PlanId)
                            .col(PlanRevision::Revision),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FollowUpIndex::Table)
                    .if_not_exists()
                    .col(string(FollowUpIndex::PlanId))
                    .col(string(FollowUpIndex::FollowUpId))
                    .col(string(FollowUpIndex::ParticipantId))
                    .col(string(FollowUpIndex::OrganisationId))
                    .col(string_null(FollowUpIndex::TeamId))
                    .col(string(FollowUpIndex::DueOn))
                    .col(text(FollowUpIndex::Body))
                    .primary_key(
                        Index::create()
                            .col(FollowUpIndex::PlanId)
                            .col(FollowUpIndex::FollowUpId),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("follow_up_organisation_due", FollowUpIndex::OrganisationId),
            ("follow_up_team_due", FollowUpIndex::TeamId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(FollowUpIndex::Table)
                        .col(column)
                        .col(FollowUpIndex::DueOn)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Decision::Table)
                    .if_not_exists()
                    .col(string(Decision::OrganisationId))
                    .col(string(Decision::ExternalId))
                    .col(string(Decision::ParticipantId))
                    .col(text(Decision::Body))
                    .col(string(Decision::PlanId))
                    .col(string(Decision::InterventionId))
                    .col(big_integer(Decision::PlanRevision))
                    .col(timestamp_with_time_zone(Decision::RecordedAt))
                    .primary_key(
                        Index::create()
                            .col(Decision::OrganisationId)
                            .col(Decision::ExternalId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CatalogueEntry::Table)
                    .if_not_exists()
                    .col(string(CatalogueEntry::Code).primary_key())
                    .col(string(CatalogueEntry::Principal))
                    .col(string(CatalogueEntry::Name))
                    .col(boolean(CatalogueEntry::Active))
                    .col(integer(CatalogueEntry::Position))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CatalogueEntry::Table.into_iden(),
            Decision::Table.into_iden(),
            FollowUpIndex::Table.into_iden(),
            PlanRevision::Table.into_iden(),
            Plan::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Seeds the intervention catalogue of both principals from the Malmö pre-study (seed 002).
pub struct SeedCatalogue;

impl MigrationName for SeedCatalogue {
    fn name(&self) -> &str {
        "m20261123_000101_seed_catalogue"
    }
}

/// Region (Område Psykos) and municipality (Malmö stad) interventions, in the report's order,
/// plus the municipal kinds that its mapping of participants counts (ekonomiskt bistånd,
/// stödboende, sysselsättning, anhörigstöd).
pub const SEED: &[(&str, &str, &str)] = &[
    (
        "region.psychological_treatment",
        "region",
        "Psykologisk behandling",
    ),
    (
        "region.pharmacological_treatment",
        "region",
        "Farmakologisk behandling",
    ),
    (
        "region.physiotherapy",
        "region",
        "Fysioterapeutisk behandling",
    ),
    (
        "region.occupational_therapy",
        "region",
        "Arbetsterapeutisk behandling",
    ),
    ("region.health_dialogue", "region", "Hälsosamtal"),
    ("region.smoking_cessation", "region", "Tobaksavvänjning"),
    (
        "region.ips",
        "region",
        "IPS (Individual Placement and Support)",
    ),
    (
        "region.imr",
        "region",
        "IMR (Illness Management and Recovery)",
    ),
    (
        "region.ipt_cognitive",
        "region",
        "IPT-k (Integrerad psykologisk terapi – kognitiv träning)",
    ),
    (
        "region.psychoeducation",
        "region",
        "Psykopedagogisk utbildning",
    ),
    (
        "region.social_skills_training",
        "region",
        "Social färdighetsträning",
    ),
    (
        "region.basic_body_awareness",
        "region",
        "Basal kroppskännedom",
    ),
    ("region.pool_training", "region", "Bassängträning"),
    ("region.mindfulness_group", "region", "Mindfulnessgrupp"),
    ("region.exercise_group", "region", "Gymnastikgrupp"),
    ("region.dance_group", "region", "Dansgrupp"),
    ("region.creative_group", "region", "Skapandegrupp"),
    (
        "municipality.escort_relief_contact_person",
        "municipality",
        "Ledsagar- och avlösarservice samt kontaktperson via SoL",
    ),
    ("municipality.lss", "municipality", "LSS-insatser"),
    (
        "municipality.personal_ombudsman",
        "municipality",
        "Personligt ombud",
    ),
    ("municipality.housing_support", "municipality", "Boendestöd"),
    ("municipality.guardian", "municipality", "God man"),
    ("municipality.trustee", "municipality", "Förvaltare"),
    (
        "municipality.housing",
        "municipality",
        "Boende (lägenheter, akuta boenden, genomgångsboenden m.fl.)",
    ),
    (
        "municipality.supported_housing",
        "municipality",
        "Stödboende",
    ),
    ("municipality.home_care", "municipality", "Hemtjänst"),
    (
        "municipality.home_health_care",
        "municipality",
        "Hemsjukvård",
    ),
    (
        "municipality.substance_use_outpatient",
        "municipality",
        "Öppenvårdshuset Gustav",
    ),
    (
        "municipality.maria_malmo",
        "municipality",
        "Maria Malmö (Integrerad verksamhet)",
    ),
    (
        "municipality.activity_house",
        "municipality",
        "Aktivitetshuset",
    ),
    (
        "municipality.meeting_places",
        "municipality",
        "Mötesplatser",
    ),
    (
        "municipality.rehabilitation_team",
        "municipality",
        "Rehabiliteringsteam",
    ),
    ("municipality.jobb_malmo", "municipality", "Jobb Malmö"),
    ("municipality.handkraft", "municipality", "Handkraft"),
    ("municipality.ips_team", "municipality", "IPS-team"),
    (
        "municipality.viktoriagarden",
        "municipality",
        "Viktoriagården",
    ),
    ("municipality.occupation", "municipality", "Sysselsättning"),
    (
        "municipality.income_support",
        "municipality",
        "Ekonomiskt bistånd",
    ),
    ("municipality.carer_support", "municipality", "Anhörigstöd"),
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SeedCatalogue {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut insert = Query::insert()
            .into_table(CatalogueEntry::Table)
            .columns([
                CatalogueEntry::Code,
                CatalogueEntry::Principal,
                CatalogueEntry::Name,
                CatalogueEntry::Active,
                CatalogueEntry::Position,
            ])
            .to_owned();
        for (position, (code, principal, name)) in (0i32..).zip(SEED) {
            insert.values_panic([
                (*code).into(),
                (*principal).into(),
                (*name).into(),
                true.into(),
                position.into(),
            ]);
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let codes = SEED.iter().map(|(code, _, _)| *code);
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(CatalogueEntry::Table)
                    .and_where(Expr::col(CatalogueEntry::Code).is_in(codes))
                    .to_owned(),
            )
            .await
    }
}

/// Creates the decision inbox: decisions accepted but parked because they matched no
/// waiting intervention or arrived before the participant's plan.
pub struct CreateDecisionInbox;

impl MigrationName for CreateDecisionInbox {
    fn name(&self) -> &str {
        "m20261204_000102_create_decision_inbox"
    }
}

#[derive(DeriveIden)]
enum DecisionInbox {
    Table,
    InboxId,
    OrganisationId,
    ExternalId,
    ParticipantId,
    State,
    Body,
    ParkedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateDecisionInbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DecisionInbox::Table)
                    .if_not_exists()
                    .col(string(DecisionInbox::InboxId).primary_key())
                    .col(string(DecisionInbox::OrganisationId))
                    .col(string(DecisionInbox::ExternalId))
                    .col(string(DecisionInbox::ParticipantId))
                    .col(string(DecisionInbox::State))
                    .col(text(DecisionInbox::Body))
                    .col(timestamp_with_time_zone(DecisionInbox::ParkedAt))
                    .to_owned(),
            )
            .await?;
        // One entry per pushed decision: a replay finds it.
        manager
            .create_index(
                Index::create()
                    .name("decision_inbox_external")
                    .table(DecisionInbox::Table)
                    .col(DecisionInbox::OrganisationId)
                    .col(DecisionInbox::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("decision_inbox_organisation")
                    .table(DecisionInbox::Table)
                    .col(DecisionInbox::OrganisationId)
                    .col(DecisionInbox::State)
                    .col(DecisionInbox::InboxId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DecisionInbox::Table).to_owned())
            .await
    }
}

/// Adds to each plan revision what it did with a parked decision (linked or dismissed), so
/// the plan's history tells it.
pub struct AddRevisionInboxNote;

impl MigrationName for AddRevisionInboxNote {
    fn name(&self) -> &str {
        "m20261205_000103_add_revision_inbox_note"
    }
}

#[derive(DeriveIden)]
enum PlanRevisionNote {
    #[sea_orm(iden = "plan_revision")]
    Table,
    InboxNote,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddRevisionInboxNote {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PlanRevisionNote::Table)
                    .add_column(ColumnDef::new(PlanRevisionNote::InboxNote).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PlanRevisionNote::Table)
                    .drop_column(PlanRevisionNote::InboxNote)
                    .to_owned(),
            )
            .await
    }
}
